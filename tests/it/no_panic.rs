//! Property tests: the `.env` parser, `${...}` interpolation and port parsing never panic,
//! and what cht-dev writes reads back the same.

use cht_dev::project::dotenv::EnvFile;
use cht_dev::stack::interpolate::interpolate;
use proptest::prelude::*;

/// Looks variables up in a tiny fixed environment.
fn lookup(name: &str) -> Option<String> {
    match name {
        "A" => Some("a".into()),
        "EMPTY" => Some(String::new()),
        "DOLLAR" => Some("$x".into()),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn env_parser_never_panics(text in ".{0,400}") {
        let _ = EnvFile::parse(&text);
    }

    #[test]
    fn env_parser_never_panics_on_env_like_text(text in "([A-Z_]{1,6}[ ]?=[ ]?[\"' #$\\\\a-z=\\n]{0,12}\\n?){0,8}") {
        let _ = EnvFile::parse(&text);
    }

    #[test]
    fn env_render_round_trips(
        vars in proptest::collection::vec(("[A-Za-z_][A-Za-z0-9_]{0,10}", "\\PC{0,30}"), 0..8)
    ) {
        let mut env = EnvFile::new();
        for (k, v) in &vars {
            env.set(k, v.clone());
        }
        match env.render(&["header"]) {
            Ok(text) => {
                let parsed = EnvFile::parse(&text).expect("what cht-dev writes parses");
                prop_assert_eq!(parsed, env);
            }
            // Refused only for a value no spelling carries to both composes.
            Err(e) => prop_assert!(vars.iter().any(|(k, v)| *k == e.key
                && !cht_dev::project::dotenv::is_portable(v))),
        }
    }

    #[test]
    fn interpolation_never_panics(text in ".{0,200}") {
        let _ = interpolate(&text, &lookup);
    }

    #[test]
    fn interpolation_never_panics_on_dollar_heavy_text(text in "[${}:?+\\-A-Z_a-z ]{0,80}") {
        let _ = interpolate(&text, &lookup);
    }

    #[test]
    fn text_without_dollars_is_left_alone(text in "[^$]{0,200}") {
        prop_assert_eq!(interpolate(&text, &lookup).expect("no variables"), text);
    }

    #[test]
    fn doubled_dollars_are_literal(text in "[^$]{0,40}") {
        let escaped = format!("$${text}$$");
        prop_assert_eq!(interpolate(&escaped, &lookup).expect("escaped"), format!("${text}$"));
    }

    #[test]
    fn defaults_apply_only_when_unset(default in "[a-z/]{0,20}") {
        prop_assert_eq!(interpolate(&format!("${{UNSET:-{default}}}"), &lookup).expect("default"), default.clone());
        prop_assert_eq!(interpolate(&format!("${{A:-{default}}}"), &lookup).expect("set"), "a");
    }
}
