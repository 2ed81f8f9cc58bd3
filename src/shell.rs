//! Text for a POSIX shell: printed advice that a user may paste, at any layer.

/// `word` as one POSIX shell word, for commands printed as advice: bare when it holds
/// only characters no shell treats specially, else single-quoted (a `'` inside becomes
/// `'\''`). Control characters are shown as `?`, so advice never carries escape sequences
/// to the terminal.
pub fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:@+,=%".contains(c);
    let shown = printable(word);
    if !shown.is_empty() && shown.chars().all(safe) {
        return shown;
    }
    format!("'{}'", shown.replace('\'', "'\\''"))
}

/// `text` with each control character shown as `?`, so printing it never carries an
/// escape sequence to the terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn shell_words_survive_a_shell_unchanged() {
        for word in [
            "/home/jo/.local/share/cht-dev/ca/ca.pem",
            "/home/Jo Doe/ca.pem",
            "a;rm -rf ~|x",
            "it's $HOME `id`",
            "",
        ] {
            let quoted = shell_word(word);
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf %s {quoted}"))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), word, "{quoted}");
        }
        assert_eq!(shell_word("a\x1b[2Jb"), "'a?[2Jb'");
    }
}
