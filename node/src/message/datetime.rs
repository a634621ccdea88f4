//! Time parsing for the DateTime type: the canonical UTC form, a lenient parser that behaves
//! like python-dateutil's `parse(value, fuzzy=True)` (what IntelMQ uses for every non-canonical
//! timestamp), Python-compatible `strptime`, and the parser `time_format` conversions
//! (IntelMQ `TimeFormat` / `DateTime.convert`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use regex::{Regex, RegexBuilder};

use super::types::{parse_py_float, py_isspace};

/// Now in UTC without microseconds, as IntelMQ writes it: `2024-01-01T00:00:00+00:00`.
pub fn now_utc() -> String {
    let now = Utc::now().naive_utc();
    format_utc(now.with_nanosecond(0).unwrap_or(now))
}

/// Python's `isoformat()` of a UTC datetime: `YYYY-MM-DDTHH:MM:SS+00:00`, with `.ffffff` when
/// the microseconds are not zero.
pub fn format_utc(dt: NaiveDateTime) -> String {
    let micro = dt.nanosecond() / 1000;
    let frac = if micro == 0 { String::new() } else { format!(".{micro:06}") };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}+00:00",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        frac
    )
}

/// DateTime validity: the value is in IntelMQ's canonical UTC form, i.e. Python's
/// `strptime(v, '%Y-%m-%dT%H:%M:%S+00:00')` or `'%Y-%m-%dT%H:%M:%S.%f+00:00'` accepts it.
pub fn is_valid(value: &str) -> bool {
    canonical_fast(value)
        || strptime(value, "%Y-%m-%dT%H:%M:%S+00:00").is_some()
        || strptime(value, "%Y-%m-%dT%H:%M:%S.%f+00:00").is_some()
}

/// The common case of [`is_valid`] without a regex: exactly `YYYY-MM-DDTHH:MM:SS[.f{1,6}]+00:00`
/// with a real date and time (Python rejects second 60). `false` means "ask strptime".
fn canonical_fast(value: &str) -> bool {
    let b = value.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut n = 0u32;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u32::from(c - b'0');
        }
        Some(n)
    };
    if b.len() < 25 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return false;
    }
    let rest = &b[19..];
    let frac_len = match rest.first() {
        Some(b'.') => rest[1..].iter().take_while(|c| c.is_ascii_digit()).count(),
        _ => 0,
    };
    let tail = if rest.first() == Some(&b'.') { &rest[1 + frac_len..] } else { rest };
    if rest.first() == Some(&b'.') && !(1..=6).contains(&frac_len) || tail != b"+00:00" {
        return false;
    }
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) =
        (num(0..4), num(5..7), num(8..10), num(11..13), num(14..16), num(17..19))
    else {
        return false;
    };
    h < 24 && mi < 60 && sec < 60 && y >= 1 && chrono::NaiveDate::from_ymd_opt(y as i32, mo, d).is_some()
}

/// DateTime sanitize: a canonical value stays as it is; anything else goes through the lenient
/// parser (naive times are UTC, aware ones are converted to UTC).
pub fn sanitize(value: &str) -> Option<String> {
    if is_valid(value) {
        return Some(value.to_string());
    }
    parse_fuzzy(value)
}

/// dateutil's `parse(value, fuzzy=True)` converted to UTC and formatted as IntelMQ does.
/// Missing date parts come from today (UTC).
pub fn parse_fuzzy(value: &str) -> Option<String> {
    let today = Utc::now().date_naive();
    parse_fuzzy_on(value, today)
}

/// Like [`parse_fuzzy`] with an explicit "today" (the default date, and the reference for
/// two-digit years).
pub fn parse_fuzzy_on(value: &str, today: NaiveDate) -> Option<String> {
    parse_fuzzy_with(value, today, today.year())
}

/// Like [`parse_fuzzy`] with an explicit default date and the year two-digit years are
/// resolved around (dateutil takes the latter from the clock, not from the default).
pub fn parse_fuzzy_with(value: &str, default: NaiveDate, current_year: i32) -> Option<String> {
    plain_iso(value).or_else(|| fuzzy::parse(value, default, current_year)).map(format_utc)
}

/// `YYYY-MM-DD HH:MM:SS` (or with `T`), what most feeds write, read without the fuzzy parser's
/// tokens: the same result (a test compares them), a tenth of the work. Anything else, or a
/// value out of range, is left to the fuzzy parser.
fn plain_iso(value: &str) -> Option<NaiveDateTime> {
    let b = value.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b.get(from..to)?.iter().try_fold(0u32, |n, c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let year = i32::try_from(num(0, 4)?).ok().filter(|y| *y >= 1)?;
    NaiveDate::from_ymd_opt(year, num(5, 7)?, num(8, 10)?)?.and_hms_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?)
}

// ---------------------------------------------------------------------------------------------
// TimeFormat

/// A parser's `time_format` parameter (IntelMQ `datatypes.TimeFormat`): how a feed's time
/// column becomes a DateTime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeFormat {
    /// `fuzzy` (also the default when no format is given): the lenient parser.
    Fuzzy,
    /// `timestamp`: seconds since the epoch (a fraction is allowed).
    Timestamp,
    /// `windows_nt`: 100-ns ticks since 1601-01-01 UTC.
    WindowsNt,
    /// `epoch_millis`: chosen by digit count: 10 → seconds, 12 → hundredths, 13 → milliseconds.
    EpochMillis,
    /// `utc_isoformat`: only the canonical UTC form is accepted.
    UtcIsoformat,
    /// `from_format|<strptime format>`: naive results are UTC.
    FromFormat(String),
    /// `from_format_midnight|<strptime format>`: the parsed date at 00:00 UTC.
    FromFormatMidnight(String),
}

impl TimeFormat {
    /// Parses the parameter; `None` or an empty string means `fuzzy`. The `from_format*`
    /// names need `|FORMAT`, every other name forbids it. As in IntelMQ, only the part between
    /// the first and a second `|` is the format.
    pub fn parse(s: Option<&str>) -> Result<TimeFormat, String> {
        let s = match s {
            None | Some("") => return Ok(TimeFormat::Fuzzy),
            Some(s) => s,
        };
        let mut parts = s.split('|');
        let name = parts.next().unwrap_or("");
        // An empty format counts as none.
        let format = parts.next().filter(|f| !f.is_empty());
        let tf = match (name, format) {
            ("fuzzy", None) => TimeFormat::Fuzzy,
            ("timestamp", None) => TimeFormat::Timestamp,
            ("windows_nt", None) => TimeFormat::WindowsNt,
            ("epoch_millis", None) => TimeFormat::EpochMillis,
            ("utc_isoformat", None) => TimeFormat::UtcIsoformat,
            ("from_format", Some(f)) => TimeFormat::FromFormat(f.to_string()),
            ("from_format_midnight", Some(f)) => TimeFormat::FromFormatMidnight(f.to_string()),
            ("fuzzy" | "timestamp" | "windows_nt" | "epoch_millis" | "utc_isoformat", Some(_)) => {
                return Err(format!("invalid time_format `{s}`: `{name}` takes no `|format`"));
            }
            ("from_format" | "from_format_midnight", None) => {
                return Err(format!("invalid time_format `{s}`: `{name}` needs a `|format`"));
            }
            _ => {
                return Err(format!(
                    "invalid time_format `{s}`: expected one of fuzzy, timestamp, windows_nt, epoch_millis, \
                     utc_isoformat, from_format|FORMAT, from_format_midnight|FORMAT"
                ));
            }
        };
        Ok(tf)
    }

    /// The parameter text this format was parsed from.
    pub fn as_param(&self) -> String {
        match self {
            TimeFormat::Fuzzy => "fuzzy".to_string(),
            TimeFormat::Timestamp => "timestamp".to_string(),
            TimeFormat::WindowsNt => "windows_nt".to_string(),
            TimeFormat::EpochMillis => "epoch_millis".to_string(),
            TimeFormat::UtcIsoformat => "utc_isoformat".to_string(),
            TimeFormat::FromFormat(f) => format!("from_format|{f}"),
            TimeFormat::FromFormatMidnight(f) => format!("from_format_midnight|{f}"),
        }
    }

    /// Converts a feed value into the canonical UTC DateTime text; `None` when it does not fit.
    pub fn convert(&self, value: &str) -> Option<String> {
        match self {
            // IntelMQ's `from_fuzzy` has no canonical-form shortcut: the output is normalized.
            TimeFormat::Fuzzy => parse_fuzzy(value),
            TimeFormat::Timestamp => from_timestamp_text(value),
            TimeFormat::WindowsNt => {
                let ticks: i128 = super::types::py_strip(value).parse().ok()?;
                // Python: epoch + timedelta(seconds=ticks * 10**-7), i.e. float seconds rounded
                // half-even to microseconds.
                let seconds = ticks as f64 * 1e-7;
                let micros = (seconds * 1e6).round_ties_even();
                if !micros.is_finite() || micros.abs() > 1e17 {
                    return None;
                }
                let epoch = NaiveDate::from_ymd_opt(1601, 1, 1)?.and_hms_opt(0, 0, 0)?;
                let dt = epoch.checked_add_signed(Duration::microseconds(micros as i64))?;
                in_python_range(dt).then(|| format_utc(dt))
            }
            TimeFormat::EpochMillis => {
                let n: i64 = super::types::py_strip(value).parse().ok()?;
                // The length of the text as given decides the unit.
                let secs = match value.chars().count() {
                    10 => n,
                    12 => n.div_euclid(100),
                    13 => n.div_euclid(1000),
                    _ => return None,
                };
                from_epoch_seconds(secs, 0)
            }
            TimeFormat::UtcIsoformat => is_valid(value).then(|| value.to_string()),
            TimeFormat::FromFormat(f) => {
                let (dt, offset) = strptime(value, f)?;
                let utc = dt.checked_sub_signed(Duration::seconds(i64::from(offset.unwrap_or(0))))?;
                in_python_range(utc).then(|| format_utc(utc))
            }
            TimeFormat::FromFormatMidnight(f) => {
                let (dt, _) = strptime(value, f)?;
                Some(format_utc(dt.date().and_time(NaiveTime::MIN)))
            }
        }
    }
}

/// IntelMQ `DateTime.from_timestamp` on feed text: an integer, or a float with a fraction.
fn from_timestamp_text(value: &str) -> Option<String> {
    let v = super::types::py_strip(value);
    if let Ok(n) = v.parse::<i64>() {
        return from_epoch_seconds(n, 0);
    }
    let f = parse_py_float(v)?;
    if !f.is_finite() {
        return None;
    }
    // datetime.fromtimestamp rounds to microseconds, half-even.
    let micros = (f * 1e6).round_ties_even();
    if micros.abs() > 1e17 {
        return None;
    }
    let micros = micros as i64;
    from_epoch_seconds(micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000) as u32)
}

fn from_epoch_seconds(secs: i64, micros: u32) -> Option<String> {
    let dt = chrono::DateTime::from_timestamp(secs, micros * 1000)?.naive_utc();
    in_python_range(dt).then(|| format_utc(dt))
}

/// Python datetimes cover the years 1..=9999.
fn in_python_range(dt: NaiveDateTime) -> bool {
    (1..=9999).contains(&dt.year())
}

// ---------------------------------------------------------------------------------------------
// strptime

const WEEKDAY_NAMES: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const MONTH_NAMES: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// The regex of one Python strptime directive (C locale), or `None` for a bad directive.
fn directive_regex(d: char) -> Option<String> {
    let names = |full: &[&str], abbrev: bool| {
        let mut alts: Vec<String> =
            full.iter().map(|n| if abbrev { n[..3].to_string() } else { (*n).to_string() }).collect();
        // Python sorts the alternatives longest first.
        alts.sort_by_key(|a| std::cmp::Reverse(a.len()));
        alts.join("|")
    };
    let body = match d {
        'd' => "3[01]|[12]\\d|0[1-9]|[1-9]| [1-9]".to_string(),
        'f' => "[0-9]{1,6}".to_string(),
        'H' => "2[0-3]|[0-1]\\d|\\d".to_string(),
        'I' => "1[0-2]|0[1-9]|[1-9]".to_string(),
        'G' => "\\d\\d\\d\\d".to_string(),
        'j' => "36[0-6]|3[0-5]\\d|[12]\\d\\d|0[1-9]\\d|00[1-9]|[1-9]\\d|0[1-9]|[1-9]".to_string(),
        'm' => "1[0-2]|0[1-9]|[1-9]".to_string(),
        'M' => "[0-5]\\d|\\d".to_string(),
        'S' => "6[0-1]|[0-5]\\d|\\d".to_string(),
        'U' | 'W' => "5[0-3]|[0-4]\\d|\\d".to_string(),
        'w' => "[0-6]".to_string(),
        'u' => "[1-7]".to_string(),
        'V' => "5[0-3]|0[1-9]|[1-4]\\d|\\d".to_string(),
        'y' => "\\d\\d".to_string(),
        'Y' => "\\d\\d\\d\\d".to_string(),
        'z' => "[+-]\\d\\d:?[0-5]\\d(?::?[0-5]\\d(?:\\.\\d{1,6})?)?|(?-i:Z)".to_string(),
        'A' => names(&WEEKDAY_NAMES, false),
        'a' => names(&WEEKDAY_NAMES, true),
        'B' => names(&MONTH_NAMES, false),
        'b' => names(&MONTH_NAMES, true),
        'p' => "am|pm".to_string(),
        'Z' => "utc|gmt".to_string(),
        _ => return None,
    };
    Some(body)
}

/// Translates a Python strptime format into an anchored, case-insensitive regex (as Python's
/// `_strptime` builds it); `None` for a bad or duplicated directive or a stray `%`.
fn strptime_regex(fmt: &str) -> Option<Arc<Regex>> {
    // Shared, not cloned: a cloned `Regex` starts with a cold cache and rebuilds its lazy DFA.
    type Cache = RwLock<HashMap<String, Option<Arc<Regex>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| RwLock::new(HashMap::new()));
    if let Ok(guard) = cache.read() {
        if let Some(hit) = guard.get(fmt) {
            return hit.clone();
        }
    }
    let built = build_strptime_regex(fmt).map(Arc::new);
    if let Ok(mut guard) = cache.write() {
        if guard.len() < 256 {
            guard.insert(fmt.to_string(), built.clone());
        }
    }
    built
}

fn build_strptime_regex(fmt: &str) -> Option<Regex> {
    // The C locale's composite directives.
    let fmt = fmt.replace("%c", "%a %b %d %H:%M:%S %Y").replace("%x", "%m/%d/%y").replace("%X", "%H:%M:%S");
    let mut pattern = String::from("^(?:");
    let mut seen: Vec<char> = Vec::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            let d = chars.next()?;
            if d == '%' {
                pattern.push('%');
                continue;
            }
            if seen.contains(&d) {
                return None;
            }
            seen.push(d);
            let body = directive_regex(d)?;
            let name = if d.is_ascii_uppercase() { format!("U{d}") } else { format!("L{d}") };
            pattern.push_str(&format!("(?P<{name}>{body})"));
        } else if py_isspace(c) {
            while chars.peek().is_some_and(|n| py_isspace(*n)) {
                chars.next();
            }
            pattern.push_str("\\s+");
        } else {
            pattern.push_str(&regex::escape(&c.to_string()));
        }
    }
    pattern.push(')');
    RegexBuilder::new(&pattern).case_insensitive(true).build().ok()
}

/// Python's `datetime.strptime(value, fmt)`: the naive datetime and, with `%z`, the UTC
/// offset in seconds. `None` where Python raises `ValueError`. `%U`/`%W` week numbers are
/// matched but not used to compute the date.
pub fn strptime(value: &str, fmt: &str) -> Option<(NaiveDateTime, Option<i32>)> {
    let re = strptime_regex(fmt)?;
    let caps = re.captures(value)?;
    if caps.get(0)?.end() != value.len() {
        // "unconverted data remains"
        return None;
    }
    let get = |name: &str| caps.name(name).map(|m| m.as_str());
    let int = |name: &str| -> Option<Option<i64>> {
        match get(name) {
            None => Some(None),
            Some(s) => s.trim().parse::<i64>().ok().map(Some),
        }
    };
    let mut year = int("UY")?;
    if let Some(y) = int("Ly")? {
        year = Some(if y <= 68 { y + 2000 } else { y + 1900 });
    }
    let mut month = int("Lm")?;
    let find_name = |s: &str, names: &[&str], abbrev: bool| {
        names.iter().position(|n| {
            let n = if abbrev { &n[..3] } else { n };
            n.eq_ignore_ascii_case(s)
        })
    };
    if let Some(b) = get("UB") {
        month = Some(find_name(b, &MONTH_NAMES, false)? as i64 + 1);
    }
    if let Some(b) = get("Lb") {
        month = Some(find_name(b, &MONTH_NAMES, true)? as i64 + 1);
    }
    let mut day = int("Ld")?;
    let mut hour = int("UH")?.unwrap_or(0);
    if let Some(h12) = int("UI")? {
        let pm = get("Lp").is_some_and(|p| p.eq_ignore_ascii_case("pm"));
        hour = match (h12, pm) {
            (12, false) => 0,
            (h, false) => h,
            (12, true) => 12,
            (h, true) => h + 12,
        };
    }
    let minute = int("UM")?.unwrap_or(0);
    let second = int("US")?.unwrap_or(0);
    let micro = match get("Lf") {
        None => 0,
        Some(f) => format!("{f:0<6}").parse::<i64>().ok()?,
    };
    let offset = match get("Lz") {
        None => None,
        Some(z) => Some(parse_strptime_offset(z)?),
    };
    let weekday = if let Some(a) = get("UA") {
        Some(find_name(a, &WEEKDAY_NAMES, false)?)
    } else if let Some(a) = get("La") {
        Some(find_name(a, &WEEKDAY_NAMES, true)?)
    } else if let Some(w) = int("Lw")? {
        Some(((w + 6) % 7) as usize)
    } else {
        int("Lu")?.map(|u| (u - 1) as usize)
    };
    // ISO year/week/weekday.
    if let (Some(g), Some(v)) = (int("UG")?, int("UV")?) {
        let wd = weekday?;
        let date = NaiveDate::from_isoywd_opt(
            i32::try_from(g).ok()?,
            u32::try_from(v).ok()?,
            chrono::Weekday::try_from(u8::try_from(wd).ok()?).ok()?,
        )?;
        year = Some(i64::from(date.year()));
        month = Some(i64::from(date.month()));
        day = Some(i64::from(date.day()));
    } else if get("UG").is_some() || get("UV").is_some() {
        return None;
    }
    let year = year.unwrap_or(1900);
    if let Some(j) = int("Lj")? {
        let start = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, 1, 1)?;
        let date = start.checked_add_signed(Duration::days(j - 1))?;
        month = Some(i64::from(date.month()));
        day = Some(i64::from(date.day()));
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(year).ok()?,
        u32::try_from(month.unwrap_or(1)).ok()?,
        u32::try_from(day.unwrap_or(1)).ok()?,
    )?;
    let time = NaiveTime::from_hms_micro_opt(
        u32::try_from(hour).ok()?,
        u32::try_from(minute).ok()?,
        u32::try_from(second).ok()?,
        u32::try_from(micro).ok()?,
    )?;
    if !(1..=9999).contains(&date.year()) {
        return None;
    }
    Some((date.and_time(time), offset))
}

/// `%z`: `Z`, `+HHMM`, `+HH:MM`, optionally with seconds and microseconds (dropped).
fn parse_strptime_offset(z: &str) -> Option<i32> {
    if z.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = if z.starts_with('-') { -1 } else { 1 };
    let digits: String = z[1..].split('.').next()?.chars().filter(char::is_ascii_digit).collect();
    let h: i32 = digits.get(0..2)?.parse().ok()?;
    let m: i32 = digits.get(2..4)?.parse().ok()?;
    let s: i32 = digits.get(4..6).map(str::parse).transpose().ok()?.unwrap_or(0);
    Some(sign * (h * 3600 + m * 60 + s))
}

// ---------------------------------------------------------------------------------------------
// The lenient (dateutil-compatible) parser

mod fuzzy {
    //! A re-implementation of python-dateutil's default `parser().parse(s, fuzzy=True)`
    //! behaviour (dayfirst=False, yearfirst=False, English names, local time = UTC).

    use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};

    use super::py_isspace;

    const JUMP: [&str; 18] =
        [" ", ".", ",", ";", "-", "/", "'", "at", "on", "and", "ad", "m", "t", "of", "st", "nd", "rd", "th"];
    const WEEKDAYS: [(&str, &str); 7] = [
        ("mon", "monday"),
        ("tue", "tuesday"),
        ("wed", "wednesday"),
        ("thu", "thursday"),
        ("fri", "friday"),
        ("sat", "saturday"),
        ("sun", "sunday"),
    ];
    const MONTHS: [&[&str]; 12] = [
        &["jan", "january"],
        &["feb", "february"],
        &["mar", "march"],
        &["apr", "april"],
        &["may"],
        &["jun", "june"],
        &["jul", "july"],
        &["aug", "august"],
        &["sep", "sept", "september"],
        &["oct", "october"],
        &["nov", "november"],
        &["dec", "december"],
    ];
    const UTC_ZONES: [&str; 4] = ["UTC", "GMT", "Z", "z"];

    fn jump(t: &str) -> bool {
        let l = t.to_lowercase();
        JUMP.contains(&l.as_str())
    }

    fn weekday(t: &str) -> Option<u32> {
        let l = t.to_lowercase();
        WEEKDAYS.iter().position(|(a, b)| *a == l || *b == l).map(|i| i as u32)
    }

    fn month(t: &str) -> Option<i64> {
        let l = t.to_lowercase();
        MONTHS.iter().position(|names| names.contains(&l.as_str())).map(|i| i as i64 + 1)
    }

    fn hms(t: &str) -> Option<u8> {
        match t.to_lowercase().as_str() {
            "h" | "hour" | "hours" => Some(0),
            "m" | "minute" | "minutes" => Some(1),
            "s" | "second" | "seconds" => Some(2),
            _ => None,
        }
    }

    fn ampm(t: &str) -> Option<u8> {
        match t.to_lowercase().as_str() {
            "am" | "a" => Some(0),
            "pm" | "p" => Some(1),
            _ => None,
        }
    }

    fn utczone(t: &str) -> bool {
        let l = t.to_lowercase();
        matches!(l.as_str(), "utc" | "gmt" | "z")
    }

    /// dateutil's `tzoffset(name)`: only the lowercase spellings hit its (lowercased) table.
    fn tzoffset(t: &str) -> Option<i64> {
        matches!(t, "utc" | "gmt" | "z").then_some(0)
    }

    /// Python's `str.isdigit()` (ASCII digits).
    fn isdigit(t: &str) -> bool {
        !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
    }

    /// Python's `int(token)` for lexer tokens.
    fn int(t: &str) -> Option<i64> {
        if isdigit(t) {
            Some(t.parse::<i64>().unwrap_or(i64::MAX))
        } else {
            None
        }
    }

    /// A numeric token as a decimal: integer part and fraction digits.
    #[derive(Clone, Debug)]
    struct Num {
        int: i64,
        frac: String,
    }

    impl Num {
        /// `Decimal(token)` for lexer tokens: digits with at most one `.`.
        fn parse(t: &str) -> Option<Num> {
            let (i, f) = match t.split_once('.') {
                Some((i, f)) => (i, f),
                None => (t, ""),
            };
            if (i.is_empty() && f.is_empty()) || !i.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            if !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let int = if i.is_empty() { 0 } else { i.parse::<i64>().unwrap_or(i64::MAX) };
            Some(Num { int, frac: f.to_string() })
        }

        fn has_frac(&self) -> bool {
            self.frac.bytes().any(|b| b != b'0')
        }

        fn gt(&self, n: i64) -> bool {
            self.int > n || (self.int == n && self.has_frac())
        }

        fn ge(&self, n: i64) -> bool {
            self.int >= n
        }

        /// `int(60 * (value % 1))`.
        fn sixty_frac(&self) -> i64 {
            let digits: String = self.frac.chars().take(30).collect();
            if digits.is_empty() {
                return 0;
            }
            let f: u128 = digits.parse().unwrap_or(0);
            let scale = 10u128.pow(digits.len() as u32);
            (f * 60 / scale) as i64
        }
    }

    /// Is the token a Python float literal (`float(token)` succeeds)? `Some(false)` for
    /// `nan`/`inf`, which dateutil then fails on.
    fn float_token(t: &str) -> Option<bool> {
        if Num::parse(t).is_some() {
            return Some(true);
        }
        match t.to_lowercase().as_str() {
            "nan" | "inf" | "infinity" => Some(false),
            _ => None,
        }
    }

    /// dateutil's `_timelex`: runs of letters, runs of digits (with `.`/`,` decimals), single
    /// whitespace tokens and single other characters; dotted words and dates are split up.
    pub(super) fn tokenize(s: &str) -> Vec<String> {
        #[derive(Clone, Copy, PartialEq)]
        enum St {
            None,
            Alpha,
            Num,
            AlphaDot,
            NumDot,
        }
        let chars: Vec<char> = s.chars().filter(|c| *c != '\0').collect();
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < chars.len() {
            let mut token = String::new();
            let mut state = St::None;
            let mut seen_letters = false;
            while pos < chars.len() {
                let c = chars[pos];
                match state {
                    St::None => {
                        token.push(c);
                        pos += 1;
                        if c.is_alphabetic() {
                            state = St::Alpha;
                        } else if c.is_ascii_digit() {
                            state = St::Num;
                        } else {
                            if py_isspace(c) {
                                token = " ".to_string();
                            }
                            break;
                        }
                    }
                    St::Alpha => {
                        seen_letters = true;
                        if c.is_alphabetic() {
                            token.push(c);
                        } else if c == '.' {
                            token.push(c);
                            state = St::AlphaDot;
                        } else {
                            break;
                        }
                        pos += 1;
                    }
                    St::Num => {
                        if c.is_ascii_digit() {
                            token.push(c);
                        } else if c == '.' || (c == ',' && token.chars().count() >= 2) {
                            token.push(c);
                            state = St::NumDot;
                        } else {
                            break;
                        }
                        pos += 1;
                    }
                    St::AlphaDot => {
                        seen_letters = true;
                        if c == '.' || c.is_alphabetic() {
                            token.push(c);
                        } else if c.is_ascii_digit() && token.ends_with('.') {
                            token.push(c);
                            state = St::NumDot;
                        } else {
                            break;
                        }
                        pos += 1;
                    }
                    St::NumDot => {
                        if c == '.' || c.is_ascii_digit() {
                            token.push(c);
                        } else if c.is_alphabetic() && token.ends_with('.') {
                            token.push(c);
                            state = St::AlphaDot;
                        } else {
                            break;
                        }
                        pos += 1;
                    }
                }
            }
            let dotted = matches!(state, St::AlphaDot | St::NumDot);
            if dotted && (seen_letters || token.matches('.').count() > 1 || token.ends_with(['.', ','])) {
                // Split at every `.`/`,`, keeping the separators.
                let mut piece = String::new();
                for c in token.chars() {
                    if c == '.' || c == ',' {
                        if !piece.is_empty() {
                            out.push(std::mem::take(&mut piece));
                        }
                        out.push(c.to_string());
                    } else {
                        piece.push(c);
                    }
                }
                if !piece.is_empty() {
                    out.push(piece);
                }
                continue;
            }
            if state == St::NumDot && !token.contains('.') {
                token = token.replace(',', ".");
            }
            out.push(token);
        }
        out
    }

    #[derive(Default, Debug)]
    struct Res {
        year: Option<i64>,
        month: Option<i64>,
        day: Option<i64>,
        weekday: Option<u32>,
        hour: Option<i64>,
        minute: Option<i64>,
        second: Option<i64>,
        microsecond: Option<i64>,
        tzname: Option<String>,
        tzoffset: Option<i64>,
        ampm: Option<u8>,
    }

    impl Res {
        fn is_empty(&self) -> bool {
            self.year.is_none()
                && self.month.is_none()
                && self.day.is_none()
                && self.weekday.is_none()
                && self.hour.is_none()
                && self.minute.is_none()
                && self.second.is_none()
                && self.microsecond.is_none()
                && self.tzname.is_none()
                && self.tzoffset.is_none()
                && self.ampm.is_none()
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Label {
        Y,
        M,
    }

    /// dateutil's `_ymd`: the date numbers in order of appearance and which are known to be
    /// the year or the month (the default parser never labels a day).
    #[derive(Default)]
    struct Ymd {
        vals: Vec<i64>,
        century_specified: bool,
        ystridx: Option<usize>,
        mstridx: Option<usize>,
    }

    impl Ymd {
        fn len(&self) -> usize {
            self.vals.len()
        }

        /// `append(str)`: a digit string longer than 2 is a year.
        fn append_str(&mut self, s: &str, label: Option<Label>) -> Option<()> {
            let mut label = label;
            if isdigit(s) && s.len() > 2 {
                self.century_specified = true;
                if label.is_some_and(|l| l != Label::Y) {
                    return None;
                }
                label = Some(Label::Y);
            }
            let v = int(s)?;
            self.push(v, label)
        }

        /// `append(number)`: a value above 100 is a year.
        fn append_num(&mut self, n: &Num, label: Option<Label>) -> Option<()> {
            let mut label = label;
            if n.gt(100) {
                self.century_specified = true;
                if label.is_some_and(|l| l != Label::Y) {
                    return None;
                }
                label = Some(Label::Y);
            }
            self.push(n.int, label)
        }

        fn push(&mut self, v: i64, label: Option<Label>) -> Option<()> {
            self.vals.push(v);
            let idx = self.vals.len() - 1;
            match label {
                Some(Label::M) => {
                    if self.mstridx.is_some() {
                        return None;
                    }
                    self.mstridx = Some(idx);
                }
                Some(Label::Y) => {
                    if self.ystridx.is_some() {
                        return None;
                    }
                    self.ystridx = Some(idx);
                }
                None => {}
            }
            Some(())
        }

        /// `could_be_day(value)`; `None` where dateutil raises.
        fn could_be_day(&self, n: &Num) -> Option<bool> {
            let Some(m) = self.mstridx else { return Some(n.ge(1) && !n.gt(31)) };
            let month = self.vals[m];
            let year = match self.ystridx {
                None => 2000,
                Some(y) => self.vals[y],
            };
            let days = month_days(year, month)?;
            Some(n.ge(1) && !n.gt(days))
        }

        /// `resolve_ymd(yearfirst=False, dayfirst=False)`.
        fn resolve(&self) -> Option<(Option<i64>, Option<i64>, Option<i64>)> {
            let v = &self.vals;
            let len = v.len();
            let strids: Vec<(char, usize)> =
                [('y', self.ystridx), ('m', self.mstridx)].into_iter().filter_map(|(k, i)| i.map(|i| (k, i))).collect();
            if (len == strids.len() && len > 0) || (len == 3 && strids.len() == 2) {
                let mut map = strids.clone();
                if len == 3 && strids.len() == 2 {
                    let missing_idx = (0..3).find(|i| !strids.iter().any(|(_, j)| j == i))?;
                    let missing_key = ['y', 'm', 'd'].into_iter().find(|k| !strids.iter().any(|(j, _)| j == k))?;
                    map.push((missing_key, missing_idx));
                }
                let get = |k: char| map.iter().find(|(j, _)| *j == k).map(|(_, i)| v[*i]);
                return Some((get('y'), get('m'), get('d')));
            }
            if len > 3 {
                return None;
            }
            let (mut year, mut month, mut day) = (None, None, None);
            let mstridx = self.mstridx;
            if len == 1 || (mstridx.is_some() && len == 2) {
                let other = if let Some(m) = mstridx {
                    month = Some(v[m]);
                    // Python's v[m - 1] wraps around to the last element.
                    v[(m + len - 1) % len]
                } else {
                    v[0]
                };
                if len > 1 || mstridx.is_none() {
                    if other > 31 {
                        year = Some(other);
                    } else {
                        day = Some(other);
                    }
                }
            } else if len == 2 {
                if v[0] > 31 {
                    (year, month) = (Some(v[0]), Some(v[1]));
                } else if v[1] > 31 {
                    (month, year) = (Some(v[0]), Some(v[1]));
                } else {
                    (month, day) = (Some(v[0]), Some(v[1]));
                }
            } else if len == 3 {
                let (a, b, c) = (v[0], v[1], v[2]);
                match mstridx {
                    Some(0) => {
                        if b > 31 {
                            (month, year, day) = (Some(a), Some(b), Some(c));
                        } else {
                            (month, day, year) = (Some(a), Some(b), Some(c));
                        }
                    }
                    Some(1) => {
                        if a > 31 {
                            (year, month, day) = (Some(a), Some(b), Some(c));
                        } else {
                            (day, month, year) = (Some(a), Some(b), Some(c));
                        }
                    }
                    Some(_) => {
                        if b > 31 {
                            (day, year, month) = (Some(a), Some(b), Some(c));
                        } else {
                            (year, day, month) = (Some(a), Some(b), Some(c));
                        }
                    }
                    None => {
                        if a > 31 || self.ystridx == Some(0) {
                            (year, month, day) = (Some(a), Some(b), Some(c));
                        } else if a > 12 {
                            (day, month, year) = (Some(a), Some(b), Some(c));
                        } else {
                            (month, day, year) = (Some(a), Some(b), Some(c));
                        }
                    }
                }
            }
            Some((year, month, day))
        }
    }

    /// Days in a month (`calendar.monthrange`); `None` for an impossible month or year.
    fn month_days(year: i64, month: i64) -> Option<i64> {
        if !(1..=12).contains(&month) || !(1..=9999).contains(&year) {
            return None;
        }
        let y = year as i32;
        let m = month as u32;
        let first = NaiveDate::from_ymd_opt(y, m, 1)?;
        let next = if m == 12 { NaiveDate::from_ymd_opt(y + 1, 1, 1) } else { NaiveDate::from_ymd_opt(y, m + 1, 1) };
        let next = next.unwrap_or(NaiveDate::from_ymd_opt(9999, 12, 31)?.succ_opt().unwrap_or(first));
        let days = (next - first).num_days();
        Some(if days <= 0 { 31 } else { days })
    }

    fn parsems(s: &str) -> Option<(i64, i64)> {
        match s.split_once('.') {
            None => Some((int(s)?, 0)),
            Some((i, f)) => {
                if f.contains('.') {
                    return None;
                }
                let padded: String = format!("{f:0<6}").chars().take(6).collect();
                Some((int(i)?, int(&padded)?))
            }
        }
    }

    fn parse_min_sec(n: &Num) -> (i64, Option<i64>) {
        let second = n.has_frac().then(|| n.sixty_frac());
        (n.int, second)
    }

    fn adjust_ampm(hour: i64, ampm: u8) -> i64 {
        if hour < 12 && ampm == 1 {
            hour + 12
        } else if hour == 12 && ampm == 0 {
            0
        } else {
            hour
        }
    }

    fn could_be_tzname(res: &Res, ignore_offset: bool, token: &str) -> bool {
        res.hour.is_some()
            && res.tzname.is_none()
            && (ignore_offset || res.tzoffset.is_none())
            && token.chars().count() <= 5
            && (token.chars().all(|c| c.is_ascii_uppercase()) || UTC_ZONES.contains(&token))
    }

    fn find_hms_idx(idx: usize, l: &[String]) -> Option<usize> {
        let len = l.len();
        if idx + 1 < len && hms(&l[idx + 1]).is_some() {
            Some(idx + 1)
        } else if idx + 2 < len && l[idx + 1] == " " && hms(&l[idx + 2]).is_some() {
            Some(idx + 2)
        } else if idx > 0 && hms(&l[idx - 1]).is_some() {
            Some(idx - 1)
        } else if 1 < idx && idx == len - 1 && l[idx - 1] == " " && hms(&l[idx - 2]).is_some() {
            Some(idx - 2)
        } else {
            None
        }
    }

    /// `_parse_numeric_token`: returns the index of the last consumed token.
    fn parse_numeric(l: &[String], mut idx: usize, ymd: &mut Ymd, res: &mut Res) -> Option<usize> {
        let tok = l[idx].as_str();
        let value = Num::parse(tok)?;
        let len_li = tok.chars().count();
        let len_l = l.len();
        if ymd.len() == 3
            && (len_li == 2 || len_li == 4)
            && res.hour.is_none()
            && (idx + 1 >= len_l || (l[idx + 1] != ":" && hms(&l[idx + 1]).is_none()))
        {
            // 19990101T23[59]
            res.hour = Some(int(&tok[..2])?);
            if len_li == 4 {
                res.minute = Some(int(&tok[2..])?);
            }
        } else if len_li == 6 || (len_li > 6 && tok.find('.') == Some(6)) {
            // YYMMDD or HHMMSS[.ss]
            if ymd.len() == 0 && !tok.contains('.') {
                ymd.append_str(&tok[..2], None)?;
                ymd.append_str(&tok[2..4], None)?;
                ymd.append_str(&tok[4..], None)?;
            } else {
                res.hour = Some(int(&tok[..2])?);
                res.minute = Some(int(&tok[2..4])?);
                let (s, us) = parsems(&tok[4..])?;
                res.second = Some(s);
                res.microsecond = Some(us);
            }
        } else if matches!(len_li, 8 | 12 | 14) {
            // YYYYMMDD[hhmm[ss]]
            ymd.append_str(&tok[..4], Some(Label::Y))?;
            ymd.append_str(&tok[4..6], None)?;
            ymd.append_str(&tok[6..8], None)?;
            if len_li > 8 {
                res.hour = Some(int(&tok[8..10])?);
                res.minute = Some(int(&tok[10..12])?);
                if len_li > 12 {
                    res.second = Some(int(&tok[12..])?);
                }
            }
        } else if let Some(hms_idx) = find_hms_idx(idx, l) {
            // HH[ ]h or MM[ ]m or SS[.ss][ ]s
            let h = if hms_idx > idx {
                let h = hms(&l[hms_idx])?;
                idx = hms_idx;
                h
            } else {
                hms(&l[hms_idx])? + 1
            };
            match h {
                0 => {
                    res.hour = Some(value.int);
                    if value.has_frac() {
                        res.minute = Some(value.sixty_frac());
                    }
                }
                1 => {
                    let (m, s) = parse_min_sec(&value);
                    res.minute = Some(m);
                    res.second = s;
                }
                2 => {
                    let (s, us) = parsems(tok)?;
                    res.second = Some(s);
                    res.microsecond = Some(us);
                }
                _ => {}
            }
        } else if idx + 2 < len_l && l[idx + 1] == ":" {
            // HH:MM[:SS[.ss]]
            res.hour = Some(value.int);
            let minute = Num::parse(&l[idx + 2])?;
            let (m, s) = parse_min_sec(&minute);
            res.minute = Some(m);
            res.second = s;
            if idx + 4 < len_l && l[idx + 3] == ":" {
                let (s, us) = parsems(&l[idx + 4])?;
                res.second = Some(s);
                res.microsecond = Some(us);
                idx += 2;
            }
            idx += 2;
        } else if idx + 1 < len_l && matches!(l[idx + 1].as_str(), "-" | "/" | ".") {
            let sep = l[idx + 1].clone();
            ymd.append_str(tok, None)?;
            if idx + 2 < len_l && !jump(&l[idx + 2]) {
                if isdigit(&l[idx + 2]) {
                    // 01-01[-01]
                    ymd.append_str(&l[idx + 2], None)?;
                } else {
                    // 01-Jan[-01]
                    let m = month(&l[idx + 2])?;
                    ymd.push(m, Some(Label::M))?;
                }
                if idx + 3 < len_l && l[idx + 3] == sep {
                    let next = l.get(idx + 4)?;
                    match month(next) {
                        Some(m) => ymd.push(m, Some(Label::M))?,
                        None => ymd.append_str(next, None)?,
                    }
                    idx += 2;
                }
                idx += 1;
            }
            idx += 1;
        } else if idx + 1 >= len_l || jump(&l[idx + 1]) {
            if idx + 2 < len_l && ampm(&l[idx + 2]).is_some() {
                // 12 am
                res.hour = Some(adjust_ampm(value.int, ampm(&l[idx + 2])?));
                idx += 1;
            } else {
                // Year, month or day.
                ymd.append_num(&value, None)?;
            }
            idx += 1;
        } else if ampm(&l[idx + 1]).is_some() && value.ge(0) && !value.ge(24) {
            // 12am
            res.hour = Some(adjust_ampm(value.int, ampm(&l[idx + 1])?));
            idx += 1;
        } else if ymd.could_be_day(&value)? {
            ymd.append_num(&value, None)?;
        }
        // Otherwise fuzzy parsing skips the token.
        Some(idx)
    }

    /// `_parse` + `_build_naive` + `_build_tzaware` + `astimezone(UTC)`: the UTC datetime.
    pub(super) fn parse(s: &str, today: NaiveDate, current_year: i32) -> Option<NaiveDateTime> {
        let mut l = tokenize(s);
        let len_l = l.len();
        let mut res = Res::default();
        let mut ymd = Ymd::default();
        let mut i = 0;
        while i < len_l {
            let tok = l[i].clone();
            if let Some(finite) = float_token(&tok) {
                if !finite {
                    return None;
                }
                i = parse_numeric(&l, i, &mut ymd, &mut res)?;
            } else if let Some(wd) = weekday(&tok) {
                res.weekday = Some(wd);
            } else if let Some(m) = month(&tok) {
                ymd.push(m, Some(Label::M))?;
                if i + 1 < len_l {
                    if l[i + 1] == "-" || l[i + 1] == "/" {
                        // Jan-01[-99]
                        let sep = l[i + 1].clone();
                        ymd.append_str(l.get(i + 2)?, None)?;
                        if i + 3 < len_l && l[i + 3] == sep {
                            ymd.append_str(l.get(i + 4)?, None)?;
                            i += 2;
                        }
                        i += 2;
                    } else if i + 4 < len_l && l[i + 1] == " " && l[i + 3] == " " && l[i + 2].eq_ignore_ascii_case("of")
                    {
                        // Jan of 01: clearly a year.
                        if isdigit(&l[i + 4]) {
                            let y = convert_year(int(&l[i + 4])?, false, current_year);
                            ymd.append_str(&y.to_string(), Some(Label::Y))?;
                        }
                        i += 4;
                    }
                }
            } else if let Some(ap) = ampm(&tok) {
                let valid = res.ampm.is_none() && res.hour.is_some_and(|h| (0..=12).contains(&h));
                if valid {
                    res.hour = res.hour.map(|h| adjust_ampm(h, ap));
                    res.ampm = Some(ap);
                }
            } else if could_be_tzname(&res, false, &tok) {
                res.tzoffset = tzoffset(&tok);
                res.tzname = Some(tok.clone());
                if i + 1 < len_l && (l[i + 1] == "+" || l[i + 1] == "-") {
                    // GMT+3 means "my time +3 is GMT": flip the sign.
                    l[i + 1] = if l[i + 1] == "+" { "-".to_string() } else { "+".to_string() };
                    res.tzoffset = None;
                    if utczone(&tok) {
                        res.tzname = None;
                    }
                }
            } else if res.hour.is_some() && (tok == "+" || tok == "-") {
                let signal = if tok == "+" { 1 } else { -1 };
                let next = l.get(i + 1)?.clone();
                let len_li = next.chars().count();
                let (h, m) = if len_li == 4 {
                    (int(next.get(..2)?)?, int(next.get(2..)?)?)
                } else if i + 2 < len_l && l[i + 2] == ":" {
                    let m = int(l.get(i + 3)?)?;
                    let h = int(&next)?;
                    i += 2;
                    (h, m)
                } else if len_li <= 2 {
                    (int(&next)?, 0)
                } else {
                    return None;
                };
                res.tzoffset = Some(signal * (h * 3600 + m * 60));
                // -0300 (BRST)
                if i + 5 < len_l
                    && jump(&l[i + 2])
                    && l[i + 3] == "("
                    && l[i + 5] == ")"
                    && l[i + 4].chars().count() >= 3
                    && could_be_tzname(&res, true, &l[i + 4])
                {
                    res.tzname = Some(l[i + 4].clone());
                    i += 4;
                }
                i += 1;
            }
            // Everything else is skipped (fuzzy).
            i += 1;
        }
        let (year, month, day) = ymd.resolve()?;
        res.year = year.map(|y| convert_year(y, ymd.century_specified, current_year));
        res.month = month;
        res.day = day;
        // validate()
        let is_z = matches!(res.tzname.as_deref(), Some("Z" | "z"));
        if (res.tzoffset == Some(0) && res.tzname.is_none()) || is_z {
            res.tzname = Some("UTC".to_string());
            res.tzoffset = Some(0);
        } else if res.tzoffset != Some(0) && res.tzname.as_deref().is_some_and(utczone) {
            res.tzoffset = Some(0);
        }
        if res.is_empty() {
            return None;
        }
        let naive = build_naive(&res, today)?;
        // Naive results (and unknown zone names) are UTC; a UTC zone name means offset 0.
        let offset = res.tzoffset.unwrap_or(0);
        // Python's tzinfo offsets must lie strictly within one day.
        if offset.abs() >= 86_400 {
            return None;
        }
        let utc = naive.checked_sub_signed(Duration::seconds(offset))?;
        (1..=9999).contains(&utc.year()).then_some(utc)
    }

    fn convert_year(year: i64, century_specified: bool, current_year: i32) -> i64 {
        let current = i64::from(current_year);
        if year < 100 && !century_specified {
            let mut y = year + current / 100 * 100;
            if y >= current + 50 {
                y -= 100;
            } else if y < current - 50 {
                y += 100;
            }
            y
        } else {
            year
        }
    }

    fn build_naive(res: &Res, today: NaiveDate) -> Option<NaiveDateTime> {
        let year = res.year.unwrap_or(i64::from(today.year()));
        let month = res.month.unwrap_or(i64::from(today.month()));
        let mut day = res.day.unwrap_or(i64::from(today.day()));
        if res.day.is_none() {
            let max = month_days(year, month)?;
            if day > max {
                day = max;
            }
        }
        let date =
            NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, u32::try_from(month).ok()?, u32::try_from(day).ok()?)?;
        if !(1..=9999).contains(&date.year()) {
            return None;
        }
        let time = NaiveTime::from_hms_micro_opt(
            u32::try_from(res.hour.unwrap_or(0)).ok()?,
            u32::try_from(res.minute.unwrap_or(0)).ok()?,
            u32::try_from(res.second.unwrap_or(0)).ok()?,
            u32::try_from(res.microsecond.unwrap_or(0)).ok()?,
        )?;
        let mut dt = date.and_time(time);
        if let (Some(wd), None) = (res.weekday, res.day) {
            let current = dt.weekday().num_days_from_monday();
            let ahead = (wd + 7 - current) % 7;
            dt = dt.checked_add_signed(Duration::days(i64::from(ahead)))?;
        }
        Some(dt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    /// Parses with the default date 2020-06-15 and 2026 as the reference year for two-digit
    /// years (the settings the Python reference values were produced with).
    fn fz(s: &str) -> Option<String> {
        fuzzy::parse(s, day(2020, 6, 15), 2026).map(format_utc)
    }

    #[test]
    fn canonical_form_is_valid_and_kept() {
        assert!(is_valid("2016-07-19T04:40:01+00:00"));
        assert!(is_valid("2016-07-19T04:40:01.617719+00:00"));
        assert!(is_valid("2016-07-19T04:40:01.6+00:00"));
        assert!(is_valid("2016-7-9T4:4:1+00:00"));
        assert_eq!(sanitize("2016-7-9T4:4:1+00:00").as_deref(), Some("2016-7-9T4:4:1+00:00"));
        assert!(!is_valid("2016-07-19T04:40:01+02:00"));
        assert!(!is_valid("2016-07-19 04:40:01+00:00"));
        assert!(!is_valid("2016-07-19T04:40:01Z"));
        assert!(!is_valid("2016-02-30T04:40:01+00:00"));
        assert!(!is_valid("2016-07-19T04:40:60+00:00"));
        assert!(!is_valid("2016-07-19T04:40:01.1234567+00:00"));
        assert!(!is_valid(""));
    }

    #[test]
    fn now_is_canonical_whole_seconds() {
        let now = now_utc();
        assert!(is_valid(&now), "{now}");
        assert_eq!(now.len(), 25);
    }

    #[test]
    fn sanitize_converts_to_utc() {
        assert_eq!(
            sanitize("2016-07-19 06:40:01.617719+02:00 UTC").as_deref(),
            Some("2016-07-19T04:40:01.617719+00:00")
        );
        assert_eq!(sanitize("2016-12-14T04:19:00Z").as_deref(), Some("2016-12-14T04:19:00+00:00"));
        assert_eq!(sanitize("no date here"), None);
        assert_eq!(sanitize(""), None);
    }

    #[test]
    fn tokenizer_matches_dateutil() {
        let t = |s: &str| fuzzy::tokenize(s);
        assert_eq!(
            t("2016-12-14T04:19:00.5+02:00"),
            ["2016", "-", "12", "-", "14", "T", "04", ":", "19", ":", "00.5", "+", "02", ":", "00"]
        );
        assert_eq!(t("14.12.2016"), ["14", ".", "12", ".", "2016"]);
        assert_eq!(t("Sep.20.2009"), ["Sep", ".", "20", ".", "2009"]);
        assert_eq!(t("12,5"), ["12.5"]);
        assert_eq!(t("1,5"), ["1", ",", "5"]);
        assert_eq!(t("a  b"), ["a", " ", " ", "b"]);
        assert_eq!(t("4:30:21.447"), ["4", ":", "30", ":", "21.447"]);
        assert_eq!(t("a.m."), ["a", ".", "m", "."]);
    }

    /// Reference values from python-dateutil 2.9.0 `parse(s, fuzzy=True,
    /// default=datetime(2020, 6, 15))` followed by `.astimezone(timezone.utc).isoformat()`
    /// (local time UTC, run in 2026), many of them taken from the conformance corpus.
    #[test]
    fn fuzzy_matches_dateutil() {
        let cases: &[(&str, Option<&str>)] = &[
            ("2016-07-19 06:40:01.617719+02:00 UTC", Some("2016-07-19T04:40:01.617719+00:00")),
            ("Tue, 14 Dec 2016 04:19:00 GMT", Some("2016-12-14T04:19:00+00:00")),
            ("14 Dec 2016 04:19:00", Some("2016-12-14T04:19:00+00:00")),
            ("Dec 14 2016", Some("2016-12-14T00:00:00+00:00")),
            ("2016-12-14", Some("2016-12-14T00:00:00+00:00")),
            ("12/14/2016 04:19", Some("2016-12-14T04:19:00+00:00")),
            ("20161214", Some("2016-12-14T00:00:00+00:00")),
            ("161214", Some("2014-12-16T00:00:00+00:00")),
            ("10:00", Some("2020-06-15T10:00:00+00:00")),
            ("Dec 14", Some("2020-12-14T00:00:00+00:00")),
            ("2016", Some("2016-06-15T00:00:00+00:00")),
            ("12", Some("2020-06-12T00:00:00+00:00")),
            ("foo", None),
            ("nan", None),
            ("04:19 - foo", None),
            ("2018-08-01T00:00:00+00", Some("2018-08-01T00:00:00+00:00")),
            ("1450193702", None),
            ("Sunday May 24 2020 22:45:28.4870", Some("2020-05-24T22:45:28.487000+00:00")),
            ("14.12.2016", Some("2016-12-14T00:00:00+00:00")),
            ("01/Aug/2018:09:49:41 +0200", Some("2018-08-01T07:49:41+00:00")),
            ("2018-12-31 23:00:00 UTC", Some("2018-12-31T23:00:00+00:00")),
            ("2015-10-20T06:14:00+0000", Some("2015-10-20T06:14:00+00:00")),
            ("3 PM", Some("2020-06-15T15:00:00+00:00")),
            ("Fri Oct 31 13:37:42 2017 GMT", Some("2017-10-31T13:37:42+00:00")),
            ("at 5 h", Some("2020-06-15T05:00:00+00:00")),
            ("2016-12-14T04:19:00 CET", Some("2016-12-14T04:19:00+00:00")),
            ("2016-12-14 04:19:00 EST+5", Some("2016-12-14T09:19:00+00:00")),
            ("2016-12-14 04:19:00 -0300 (BRST)", Some("2016-12-14T07:19:00+00:00")),
            ("2016-07-19 06:40 UTC+2", Some("2016-07-19T08:40:00+00:00")),
            ("UTC+02:00", Some("2020-06-15T02:00:00+00:00")),
        ];
        for (input, expected) in cases {
            assert_eq!(fz(input).as_deref(), *expected, "input {input:?}");
        }
    }

    /// 1500 strings (date-like values and whole lines from the conformance corpus, plus
    /// generated token soups) with python-dateutil's answers.
    #[test]
    fn fuzzy_matches_dateutil_on_recorded_vectors() {
        let data = include_str!("testdata/datetime_dateutil.tsv");
        let mut checked = 0;
        for line in data.lines().filter(|l| !l.starts_with('#')) {
            let (input, expected) = line.split_once('\t').expect("two columns");
            let input: String = serde_json::from_str(input).expect("json string");
            let expected = (expected != "NONE").then_some(expected);
            assert_eq!(fz(&input).as_deref(), expected, "input {input:?}");
            checked += 1;
        }
        assert!(checked > 1000);
    }

    #[test]
    fn strptime_follows_python() {
        let p = |v: &str, f: &str| strptime(v, f).map(|(dt, off)| (format_utc(dt), off));
        assert_eq!(p("15-02-2019", "%d-%m-%Y"), Some(("2019-02-15T00:00:00+00:00".to_string(), None)));
        assert_eq!(
            p("2019-02-15 10:11:12.5", "%Y-%m-%d %H:%M:%S.%f"),
            Some(("2019-02-15T10:11:12.500000+00:00".to_string(), None))
        );
        assert_eq!(
            p("2019-02-15T10:11:12+0200", "%Y-%m-%dT%H:%M:%S%z"),
            Some(("2019-02-15T10:11:12+00:00".to_string(), Some(7200)))
        );
        assert_eq!(
            p("2019-02-15T10:11:12Z", "%Y-%m-%dT%H:%M:%S%z"),
            Some(("2019-02-15T10:11:12+00:00".to_string(), Some(0)))
        );
        assert_eq!(p("Feb 5 19 3:04 PM", "%b %d %y %I:%M %p"), Some(("2019-02-05T15:04:00+00:00".to_string(), None)));
        assert_eq!(p("february  5 1970", "%B %d %Y"), Some(("1970-02-05T00:00:00+00:00".to_string(), None)));
        assert_eq!(p("12:00", "%I:%M"), Some(("1900-01-01T00:00:00+00:00".to_string(), None)));
        assert_eq!(p("69", "%y"), Some(("1969-01-01T00:00:00+00:00".to_string(), None)));
        assert_eq!(p("2020 060", "%Y %j"), Some(("2020-02-29T00:00:00+00:00".to_string(), None)));
        assert_eq!(p("100%", "100%%"), Some(("1900-01-01T00:00:00+00:00".to_string(), None)));
        assert_eq!(p("15-02-2019x", "%d-%m-%Y"), None);
        assert_eq!(p("30-02-2019", "%d-%m-%Y"), None);
        assert_eq!(p("15-02-2019", "%d-%m-%Q"), None);
        assert_eq!(p("15-02-2019", "%d-%m-%"), None);
        assert_eq!(p("1 1", "%d %d"), None);
    }

    #[test]
    fn time_format_parsing() {
        assert_eq!(TimeFormat::parse(None), Ok(TimeFormat::Fuzzy));
        assert_eq!(TimeFormat::parse(Some("")), Ok(TimeFormat::Fuzzy));
        assert_eq!(TimeFormat::parse(Some("fuzzy")), Ok(TimeFormat::Fuzzy));
        assert_eq!(TimeFormat::parse(Some("timestamp")), Ok(TimeFormat::Timestamp));
        assert_eq!(TimeFormat::parse(Some("windows_nt")), Ok(TimeFormat::WindowsNt));
        assert_eq!(TimeFormat::parse(Some("epoch_millis")), Ok(TimeFormat::EpochMillis));
        assert_eq!(TimeFormat::parse(Some("utc_isoformat")), Ok(TimeFormat::UtcIsoformat));
        assert_eq!(TimeFormat::parse(Some("from_format|%d-%m-%Y")), Ok(TimeFormat::FromFormat("%d-%m-%Y".to_string())));
        assert_eq!(
            TimeFormat::parse(Some("from_format_midnight|%d-%m-%Y|x")),
            Ok(TimeFormat::FromFormatMidnight("%d-%m-%Y".to_string()))
        );
        assert!(TimeFormat::parse(Some("from_format")).is_err());
        assert!(TimeFormat::parse(Some("from_format|")).is_err());
        assert_eq!(TimeFormat::parse(Some("timestamp|")), Ok(TimeFormat::Timestamp));
        assert!(TimeFormat::parse(Some("timestamp|%s")).is_err());
        let err = TimeFormat::parse(Some("epoch")).expect_err("unknown name");
        assert!(err.contains("epoch"));
        assert_eq!(TimeFormat::FromFormat("%Y".to_string()).as_param(), "from_format|%Y");
    }

    #[test]
    fn time_format_conversions() {
        let c = |tf: &str, v: &str| TimeFormat::parse(Some(tf)).expect("valid format").convert(v);
        assert_eq!(c("timestamp", "1495782036").as_deref(), Some("2017-05-26T07:00:36+00:00"));
        assert_eq!(c("timestamp", "1495782036.5").as_deref(), Some("2017-05-26T07:00:36.500000+00:00"));
        assert_eq!(c("timestamp", "abc"), None);
        assert_eq!(c("epoch_millis", "1495782036").as_deref(), Some("2017-05-26T07:00:36+00:00"));
        assert_eq!(c("epoch_millis", "1495782036123").as_deref(), Some("2017-05-26T07:00:36+00:00"));
        assert_eq!(c("epoch_millis", "149578203612").as_deref(), Some("2017-05-26T07:00:36+00:00"));
        assert_eq!(c("epoch_millis", "14957820361"), None);
        assert_eq!(c("windows_nt", "131349599830000000").as_deref(), Some("2017-03-25T23:59:43+00:00"));
        assert_eq!(c("windows_nt", "132348339284870000").as_deref(), Some("2020-05-24T22:45:28.487000+00:00"));
        assert_eq!(c("utc_isoformat", "2017-03-25T23:59:43+00:00").as_deref(), Some("2017-03-25T23:59:43+00:00"));
        assert_eq!(c("utc_isoformat", "2017-03-25 23:59:43"), None);
        assert_eq!(c("from_format|%d-%m-%Y %H:%M", "21-06-2019 10:30").as_deref(), Some("2019-06-21T10:30:00+00:00"));
        assert_eq!(
            c("from_format|%Y-%m-%d %H:%M%z", "2019-06-21 10:30+0200").as_deref(),
            Some("2019-06-21T08:30:00+00:00")
        );
        assert_eq!(c("from_format_midnight|%d-%m-%Y", "21-06-2019").as_deref(), Some("2019-06-21T00:00:00+00:00"));
        assert_eq!(c("from_format_midnight|%d-%m-%Y", "21-13-2019"), None);
        assert_eq!(c("fuzzy", "2019-06-21 10:30").as_deref(), Some("2019-06-21T10:30:00+00:00"));
        assert_eq!(c("fuzzy", "2019-6-21T10:30:00+00:00").as_deref(), Some("2019-06-21T10:30:00+00:00"));
        assert_eq!(c("epoch_millis", " 149578203").as_deref(), Some("1974-09-28T05:30:03+00:00"));
    }

    #[test]
    fn plain_iso_times_read_as_the_fuzzy_parser_reads_them() {
        let today = day(2021, 2, 3);
        let mut accepted = 0;
        for date in [
            "2024-02-29",
            "2023-02-29",
            "2023-02-28",
            "0000-01-01",
            "0001-01-01",
            "9999-12-31",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "2026-11-26",
            "2026-1a-26",
        ] {
            for time in ["00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60", "02:42:21", "2:42:210"] {
                for sep in [" ", "T", "_"] {
                    let text = format!("{date}{sep}{time}");
                    let fast = plain_iso(&text);
                    accepted += usize::from(fast.is_some());
                    if let Some(fast) = fast {
                        assert_eq!(Some(fast), fuzzy::parse(&text, today, 2021), "{text}");
                    }
                    assert_eq!(
                        parse_fuzzy_on(&text, today),
                        fuzzy::parse(&text, today, 2021).map(format_utc),
                        "{text}"
                    );
                }
            }
        }
        assert_eq!(accepted, 5 * 3 * 2, "the plain forms of the valid dates and times");
    }

    #[test]
    fn parse_fuzzy_on_uses_the_given_day() {
        assert_eq!(parse_fuzzy_on("10:00", day(2021, 2, 3)).as_deref(), Some("2021-02-03T10:00:00+00:00"));
        assert_eq!(parse_fuzzy_on("Feb", day(2021, 3, 31)).as_deref(), Some("2021-02-28T00:00:00+00:00"));
    }
}
