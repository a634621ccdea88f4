//! Team Cymru parsers: the CAP program report and the Full Bogons lists.

pub mod parser_cap_program;
pub mod parser_full_bogons;

/// Python's `str.splitlines()` (one implementation for every parser).
pub(crate) use super::text_lines::py_splitlines;

#[cfg(test)]
mod tests {
    use super::py_splitlines;

    #[test]
    fn splitlines_matches_python() {
        assert_eq!(py_splitlines("a\nb\r\nc\rd"), vec!["a", "b", "c", "d"]);
        assert_eq!(py_splitlines("a\n\nb\n"), vec!["a", "", "b"]);
        assert_eq!(py_splitlines(""), Vec::<&str>::new());
        assert_eq!(py_splitlines("x\u{2028}y"), vec!["x", "y"]);
    }
}
