//! One module per command; each takes resolved settings and never parses arguments.

pub mod adopt;
pub mod ca;
pub mod completions;
pub mod doctor;
pub mod engine;
pub mod export;
pub mod init;
pub mod lifecycle;
pub mod ls;
pub mod status;
pub mod trust;
pub mod up;
pub mod upgrade;
pub mod versions;

/// Formats rows as left-aligned columns separated by two spaces (no trailing blanks).
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                } else {
                    line.push_str(cell);
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec!["NAME".to_string(), "PORT".to_string()],
            vec!["longer".to_string(), "1".to_string()],
        ];
        assert_eq!(super::table(&rows), ["NAME    PORT", "longer  1"]);
    }
}
