use super::*;

#[test]
fn the_budget_stops_at_the_declared_size_or_the_free_space_floor() {
    let mut budget = Budget::new(100 << 20, 10 << 20);
    // The first file looks at the free space; then only every few megabytes.
    assert_eq!(budget.admit(1, || Some(20 << 20)), Ok(()));
    assert_eq!(
        budget.admit(1 << 20, || panic!("not looked at yet")),
        Ok(())
    );
    assert_eq!(
        budget.admit(8 << 20, || Some(12 << 20)),
        Err(Stop::Floor {
            written: (1 << 20) + 1,
            needed: 18 << 20,
            available: 12 << 20,
        })
    );
    // Free space that cannot be told leaves the declared size alone to count.
    assert_eq!(budget.admit(8 << 20, || None), Ok(()));
    assert_eq!(
        budget.admit(100 << 20, || None),
        Err(Stop::Declared {
            limit: 100 << 20,
            written: (9 << 20) + 1,
        })
    );
}

#[test]
fn manifests_are_read_within_their_caps() {
    let good = br#"["data/b","data","data/a","data"]"#;
    assert_eq!(
        read_manifest(&good[..], good.len() as u64).expect("read"),
        ["data", "data/a", "data/b"].map(Box::from)
    );
    let err = read_manifest(std::io::empty(), 1 << 30).expect_err("large");
    assert!(err.contains("1.0 GB, more than"), "{err}");
    let many = serde_json::to_vec(&vec!["a"; MAX_MANIFEST_PATHS + 1]).expect("json");
    let err = read_manifest(&many[..], many.len() as u64).expect_err("many");
    assert!(err.contains("more than 400000 paths"), "{err}");
    let err = read_manifest(&b"[1]"[..], 3).expect_err("not paths");
    assert!(err.contains("its manifest"), "{err}");
    let err = read_manifest(&b"[] x"[..], 4).expect_err("trailing");
    assert!(err.contains("its manifest"), "{err}");
}
