//! Plain-text tables for people: columns padded to their widest cell and
//! separated by two spaces, trailing blanks trimmed. Shared by `iflist`
//! and `status`. Cells may come from outside (a witness's rows, an
//! interface's name): they are made harmless first ([`crate::terminal`]).

/// Renders `rows` (the first one is the header), one line each.
pub fn aligned(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| crate::terminal::harmless_line(c).into_owned())
                .collect()
        })
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_to_the_widest_cell_and_trims() {
        let rows = vec![
            vec!["A".to_owned(), "NAME".to_owned(), "X".to_owned()],
            vec!["*".to_owned(), "eth0".to_owned(), String::new()],
            vec![String::new(), "lo".to_owned(), "long".to_owned()],
        ];
        assert_eq!(aligned(&rows), "A  NAME  X\n*  eth0\n   lo    long\n");
    }
}
