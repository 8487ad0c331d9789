//! Phone numbers, parsed with libphonenumber's rules and kept in E.164 form.

use std::fmt;

use phonenumber::country;

/// The region a number without a `+` country code is read in, e.g. `BO` for Bolivia.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region(country::Id);

/// Why a region code was refused.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a region code libphonenumber knows")]
pub struct UnknownRegion(String);

impl Region {
    /// Reads an ISO 3166 alpha-2 code such as `BO` or `pe`.
    ///
    /// # Errors
    ///
    /// Fails when libphonenumber has no metadata for the code.
    pub fn parse(code: &str) -> Result<Region, UnknownRegion> {
        code.trim()
            .to_ascii_uppercase()
            .parse::<country::Id>()
            .map(Region)
            .map_err(|_| UnknownRegion(code.to_owned()))
    }
}

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing was given.
    #[error("the phone number is empty")]
    Empty,
    /// The text cannot be read as a phone number at all.
    #[error("`{0}` is not a phone number")]
    NotANumber(String),
    /// It reads as a number, but no such number exists in its region's numbering plan.
    #[error("`{0}` is not a valid number in its region's numbering plan")]
    NotValid(String),
}

/// A valid phone number in E.164 form (`+59171234567`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Reads a number as a person or an ERP writes it (`71234567`, `+591 7123-4567`,
    /// `00591…`), in `region` unless it carries its own country code.
    ///
    /// # Errors
    ///
    /// Fails when the text is empty, is not a number, or is not a valid one.
    pub fn parse(input: &str, region: Region) -> Result<PhoneNumber, PhoneError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }

        // libphonenumber accepts letters as keypad digits (1-800-FLOWERS); an SMS gateway should
        // not, because a name typed into the phone column would become somebody's number.
        if trimmed.chars().any(|c| c.is_alphabetic()) {
            return Err(PhoneError::NotANumber(trimmed.to_owned()));
        }

        let parsed = phonenumber::parse(Some(region.0), trimmed)
            .map_err(|_| PhoneError::NotANumber(trimmed.to_owned()))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneError::NotValid(trimmed.to_owned()));
        }
        Ok(PhoneNumber(
            parsed.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// Wraps a number read back from the database, where only parsed numbers are stored.
    pub fn from_stored(e164: String) -> PhoneNumber {
        PhoneNumber(e164)
    }

    /// The number in E.164 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with its middle hidden, for logs: `+5917****567`.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() <= 7 {
            return "*".repeat(chars.len());
        }
        let head: String = chars[..5].iter().collect();
        let tail: String = chars[chars.len() - 3..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(chars.len() - 8))
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bo() -> Region {
        Region::parse("BO").unwrap()
    }

    #[test]
    fn national_mobile_numbers_take_the_default_region() {
        let number = PhoneNumber::parse("71234567", bo()).unwrap();
        assert_eq!(number.as_str(), "+59171234567");
    }

    #[test]
    fn international_numbers_keep_their_own_country() {
        let number = PhoneNumber::parse("+51 912 345 678", bo()).unwrap();
        assert_eq!(number.as_str(), "+51912345678");
    }

    #[test]
    fn punctuation_is_ignored() {
        let number = PhoneNumber::parse(" +591 (7) 123-4567 ", bo()).unwrap();
        assert_eq!(number.as_str(), "+59171234567");
    }

    #[test]
    fn words_are_not_numbers() {
        assert!(matches!(
            PhoneNumber::parse("Juan Perez", bo()),
            Err(PhoneError::NotANumber(_))
        ));
        assert_eq!(PhoneNumber::parse("  ", bo()), Err(PhoneError::Empty));
    }

    #[test]
    fn numbers_outside_the_plan_are_refused() {
        assert!(matches!(
            PhoneNumber::parse("123", bo()),
            Err(PhoneError::NotValid(_) | PhoneError::NotANumber(_))
        ));
    }

    #[test]
    fn masking_hides_the_middle() {
        let number = PhoneNumber::from_stored("+59171234567".into());
        assert_eq!(number.masked(), "+5917****567");
    }

    #[test]
    fn unknown_regions_are_refused() {
        assert!(Region::parse("XX").is_err());
        assert!(Region::parse("pe").is_ok());
    }
}
