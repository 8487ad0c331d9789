//! The `limit` and `cursor` query parameters every listing takes, read the same way everywhere:
//! a limit out of range or a cursor this service did not make is a 422 naming the parameter.

use super::error::ApiError;

/// The page size asked for, `default` when none was.
///
/// # Errors
///
/// When it is not a number from 1 to `max`.
pub fn limit(raw: Option<&str>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = match raw {
        None => default,
        Some(raw) => raw.trim().parse().unwrap_or(0),
    };
    if !(1..=max).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {max}"),
        ));
    }
    Ok(limit)
}

/// The cursor given, read by `parse`.
///
/// # Errors
///
/// When `parse` cannot read it.
pub fn cursor<T>(
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    raw.map(|c| {
        parse(c).ok_or_else(|| ApiError::invalid("cursor", "not a cursor this service made"))
    })
    .transpose()
}

/// A cursor of the form `<number>.<number>` (a time and an id).
pub fn two_numbers(cursor: &str) -> Option<(i64, i64)> {
    let (a, b) = cursor.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors_are_read_or_refused_by_name() {
        assert_eq!(limit(None, 50, 500).unwrap(), 50);
        assert_eq!(limit(Some("500"), 50, 500).unwrap(), 500);
        for bad in ["0", "501", "x", "-1"] {
            let err = limit(Some(bad), 50, 500).unwrap_err();
            assert!(matches!(err, ApiError::Invalid { ref field, .. } if field == "limit"));
        }
        assert_eq!(cursor(Some("12.34"), two_numbers).unwrap(), Some((12, 34)));
        assert_eq!(cursor(None, two_numbers).unwrap(), None);
        let err = cursor(Some("12"), two_numbers).unwrap_err();
        assert!(matches!(err, ApiError::Invalid { ref field, .. } if field == "cursor"));
    }
}
